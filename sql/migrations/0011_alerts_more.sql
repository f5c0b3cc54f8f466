-- alerts.chain is always the frozen snapshot {"steps": [...], ...}; readers rely on that shape.
UPDATE alerts SET chain = jsonb_build_object('steps', chain) WHERE jsonb_typeof(chain) = 'array';
UPDATE alerts SET chain = chain || '{"steps": []}'::jsonb
 WHERE jsonb_typeof(chain) = 'object' AND jsonb_typeof(chain -> 'steps') IS DISTINCT FROM 'array';
ALTER TABLE alerts ADD CONSTRAINT alerts_chain_shape
    CHECK (jsonb_typeof(chain) = 'object' AND jsonb_typeof(chain -> 'steps') = 'array');
