-- which skills the postings ask for most
SELECT skill, count(*) AS postings
FROM (SELECT unnest(skills) AS skill FROM enriched_jobs)
GROUP BY skill
ORDER BY postings DESC, skill
LIMIT 15
