-- What a customer was quoted: the answer the provider was given for a synchronous event (the Weedmaps Draft), and
-- why. Written with the Draft's own row, once, after the answer has gone (issue: only a valid answer reaches
-- checkout). Read and written only through src/storage.

-- The bytes the provider received when the answer passed the check (or was repaired). Read and written only
-- through src/storage/payloads.ts, like the body.
ALTER TABLE events ADD COLUMN draft_answer BLOB;
-- The HTTP status the provider received: 200 with the order, or the 502/504 that kept its estimate.
ALTER TABLE events ADD COLUMN draft_answer_status INTEGER;
-- The check's outcome as JSON: { outcome: passed | repaired | rejected | unchecked, rule?, path?, repaired[], warnings[] }.
ALTER TABLE events ADD COLUMN draft_verdict TEXT;
