-- reserved: filled by its area's work; a placeholder keeps the chain linear.
SELECT 1;
