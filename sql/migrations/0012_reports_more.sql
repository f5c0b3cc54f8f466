-- (reserved; no changes yet)
SELECT 1;
