-- wrk script: POST a start of the Hello5 orchestration (fresh id each time).
-- BATON_KEY comes from the environment (scripts/bench http-rate).
wrk.method = "POST"
wrk.path = "/runtime/webhooks/durabletask/orchestrators/Hello5"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BATON_KEY")
wrk.headers["Content-Type"] = "application/json"
wrk.body = "null"
