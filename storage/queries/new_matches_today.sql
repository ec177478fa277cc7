-- postings first analysed today that are worth applying to
SELECT fit_score, title, company, location, job_url
FROM enriched_jobs
WHERE verdict = 'apply'
  AND job_key NOT IN (SELECT job_key FROM enriched_jobs_history WHERE analysed_at < current_date)
ORDER BY fit_score DESC
