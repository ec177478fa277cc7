-- yearly salary ranges by seniority, per currency
SELECT seniority, salary_currency AS currency, count(*) AS postings,
       round(median(salary_min_yearly)) AS median_min, round(median(salary_max_yearly)) AS median_max
FROM enriched_jobs
WHERE salary_min_yearly IS NOT NULL OR salary_max_yearly IS NOT NULL
GROUP BY ALL
ORDER BY currency, median_max DESC NULLS LAST
