// The dashboard (docs/dashboard.md): a page served by `baton serve` at
// /dashboard, an operations console over the same HTTP API as the CLI. It
// lists orchestrations, jobs and entities with server-side filters and
// paging, shows an instance's history as a timeline, acts on instances and
// jobs, and shows a tenant's quota and queue and, to an admin key, every
// tenant's. It is static (web/dashboard/, embedded at build time): it calls
// the API with the key the user types in (kept in the browser's
// localStorage), so it sees and does exactly what that key may. While the
// server is down it says so and keeps retrying.
#pragma once

#include "api/http/http_server.h"

namespace baton::api {

// GET /dashboard (the page), /dashboard.js and /dashboard.css; GET / redirects
// to /dashboard. No key is needed for these files; the API calls need one.
void AddDashboard(Router& router);

}  // namespace baton::api
