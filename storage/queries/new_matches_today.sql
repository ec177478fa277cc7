-- jobs first seen today that are worth applying to, each once however many boards post it
SELECT fit_score, title, company, location, boards, best_job_url AS job_url
FROM jobs
WHERE verdict = 'apply'
  AND first_seen >= current_date
ORDER BY fit_score DESC, job_group
