#include "vigil/api/internal/ui_assets.h"

#include <httplib.h>

namespace vigil::api::ui_internal {

const Asset* FindAsset(std::string_view path) {
  if (path == "/" || path == "/ui" || path == "/ui/") path = "/ui/index.html";
  for (const Asset& a : Assets()) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

void ServeUi(httplib::Server& server) {
  // A handler per path, matched exactly (cpp-httplib's patterns are regular expressions).
  const auto serve = [](const httplib::Request& req, httplib::Response& res) {
    const Asset* a = FindAsset(req.path);
    if (!a) {
      res.status = 404;
      res.set_content("no such file in the dashboard\n", "text/plain");
      return;
    }
    // The page loads only its own files and talks only to this server: no inline script, no
    // other origin, no framing.
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("Cache-Control", "no-cache");
    res.set_content(std::string(a->body), std::string(a->content_type));
  };
  server.Get("/", serve);
  server.Get(R"(/ui(/[A-Za-z0-9._-]*)?)", serve);
}

}  // namespace vigil::api::ui_internal
