-- wrk script for scripts/load-bench.sh: every request is an OFREP single evaluation,
-- POST /ofrep/v1/evaluate/flags/{key} (the key is in the URL given to wrk), whose body is
-- the JSON context in scripts/ofrep-context.json (or the file OFREP_BODY_FILE names).
local path = os.getenv("OFREP_BODY_FILE") or "scripts/ofrep-context.json"
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = file:read("*a")
file:close()
