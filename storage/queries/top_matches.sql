-- the best fits first, each job once however many boards post it: what to read tonight
SELECT fit_score, verdict, title, company, location, remote_policy, boards, best_job_url AS job_url
FROM jobs
WHERE verdict <> 'skip'
ORDER BY fit_score DESC, last_seen DESC, job_group
LIMIT 10
