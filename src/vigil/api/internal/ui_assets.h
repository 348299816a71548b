#pragma once

#include <span>
#include <string_view>

namespace httplib {
class Server;
}

namespace vigil::api::ui_internal {

// One file of the dashboard, compiled into the binary from src/vigil/api/ui/.
struct Asset {
  std::string_view path;          // as served, e.g. "/ui/app.js"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view body;
};

// Every asset of the dashboard (generated at build time: ui_assets_data.cc.in).
std::span<const Asset> Assets();

// The asset served at `path` ("/" is the page itself), or null.
const Asset* FindAsset(std::string_view path);

// Serves the dashboard: GET / and GET /ui/<file>. The files hold no data, so they need no
// token; every request the page then makes goes through the API's own checks.
void ServeUi(httplib::Server& server);

}  // namespace vigil::api::ui_internal
