// The dashboard: a page served by `baton serve` at /dashboard that shows a
// tenant's batch jobs (status, what each waits on, progress, timeline, logs,
// cancel) and orchestration instances (status, history), refreshed every two
// seconds. It is static: it reads the same HTTP API as the CLI, with the API
// key the user types in (kept in the browser's localStorage), so it sees
// exactly what that key may see. While the server is down it says so and
// keeps retrying, so a restart shows up by itself.
#pragma once

#include "api/http/http_server.h"

namespace baton::api {

// GET /dashboard (the page), /dashboard.js and /dashboard.css; GET / redirects
// to /dashboard. No key is needed for these files; the API calls need one.
void AddDashboard(Router& router);

}  // namespace baton::api
