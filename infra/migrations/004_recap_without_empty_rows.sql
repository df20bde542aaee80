-- Over no TPS rows, the empty grouping set yielded one 'nasional' row of nulls: leave it out
-- (readers take a missing region as zeros).
CREATE OR REPLACE VIEW dphp.recap_full AS
SELECT CASE
         WHEN GROUPING(tps_code) = 0 THEN 'tps'
         WHEN GROUPING(desa_code) = 0 THEN 'desa'
         WHEN GROUPING(kecamatan) = 0 THEN 'kecamatan'
         WHEN GROUPING(kabupaten) = 0 THEN 'kabupaten'
         WHEN GROUPING(provinsi) = 0 THEN 'provinsi'
         ELSE 'nasional'
       END AS level,
       COALESCE(tps_code, desa_code, kecamatan, kabupaten, provinsi, 'ID') COLLATE "C" AS region_code,
       sum(male)::int AS male, sum(female)::int AS female, sum(total)::int AS total,
       sum(tps_count)::int AS tps_count, sum(tps_loksus_count)::int AS tps_loksus_count,
       sum(new_voters)::int AS new_voters, sum(disabled)::int AS disabled,
       sum(under_age)::int AS under_age, sum(over_capacity_tps)::int AS over_capacity_tps,
       sum(d1)::int AS d1, sum(d2)::int AS d2, sum(d3)::int AS d3,
       sum(d4)::int AS d4, sum(d5)::int AS d5, sum(d6)::int AS d6
FROM (
    SELECT r.*, r.desa_code || '/' || lpad(r.tps_number::text, 3, '0') AS tps_code,
           left(r.desa_code, 8) AS kecamatan, left(r.desa_code, 5) AS kabupaten, left(r.desa_code, 2) AS provinsi
    FROM dphp.recap_tps r
    WHERE r.total > 0 OR r.under_age > 0
) x
GROUP BY GROUPING SETS ((tps_code), (desa_code), (kecamatan), (kabupaten), (provinsi), ())
HAVING count(*) > 0;
