-- which skills the jobs ask for most (a job posted on several boards counts once)
SELECT skill, count(*) AS jobs
FROM (SELECT unnest(skills) AS skill FROM jobs)
GROUP BY skill
ORDER BY jobs DESC, skill
LIMIT 15
