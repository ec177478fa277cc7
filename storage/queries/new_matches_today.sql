-- jobs first seen on the day of the last scrape (today, after tonight's) that are worth applying to,
-- each once however many boards post it; relative to the last scrape, so an older lake still answers
SELECT fit_score, title, company, location, boards, best_job_url AS job_url
FROM jobs
WHERE verdict = 'apply'
  AND first_seen >= (SELECT max(last_seen) FROM jobs)::DATE
ORDER BY fit_score DESC, job_group
