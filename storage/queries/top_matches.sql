-- the best fits first: what to read tonight
SELECT fit_score, verdict, title, company, location, remote_policy, job_url
FROM enriched_jobs
WHERE verdict <> 'skip'
ORDER BY fit_score DESC, date_posted DESC NULLS LAST
LIMIT 10
