-- postings and average fit per job board
SELECT site, count(*) AS postings, round(avg(fit_score), 1) AS avg_fit,
       count(*) FILTER (WHERE verdict = 'apply') AS apply
FROM enriched_jobs
GROUP BY site
ORDER BY postings DESC
