-- wrk script: GET the status of one instance, with the tenant's key.
-- BATON_KEY and BATON_INSTANCE come from the environment (scripts/bench http-rate).
wrk.method = "GET"
wrk.path = "/runtime/webhooks/durabletask/instances/" .. os.getenv("BATON_INSTANCE")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BATON_KEY")
