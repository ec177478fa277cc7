-- yearly salary ranges by seniority, per currency (a job posted on several boards counts once)
SELECT seniority, salary_currency AS currency, count(*) AS jobs,
       round(median(salary_min_yearly)) AS median_min, round(median(salary_max_yearly)) AS median_max
FROM jobs
WHERE salary_min_yearly IS NOT NULL OR salary_max_yearly IS NOT NULL
GROUP BY ALL
ORDER BY currency, median_max DESC NULLS LAST
