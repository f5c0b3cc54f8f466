-- Foundation gaps (issue 2): departments get a shown name an admin may edit (1–20 characters,
-- as the admin form allows); the check keeps any other writer to the same rule.
ALTER TABLE departments
    ADD CONSTRAINT departments_name_length CHECK (length(btrim(name)) BETWEEN 1 AND 20);
