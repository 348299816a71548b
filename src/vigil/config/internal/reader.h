#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace vigil::config_internal {

// Reader reads typed values out of YAML nodes and collects every problem as
// "file:line:col: section.key: what was expected", so one `vigil check` shows all of them.
// Later stages (features, rules, model) use it for their own sections.
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  void Fail(const YAML::Node& at, const std::string& where, const std::string& what);
  // At a 0-based line and column (e.g. inside an expression scalar).
  void FailAt(int line, int column, const std::string& where, const std::string& what);
  // Flags every key of `map` not in `allowed` (catches typos such as 'fromat').
  void AllowKeys(const YAML::Node& map, const std::string& where,
                 std::initializer_list<const char*> allowed);

  // Each reads map[key] into `out` and returns true when present and well-typed. A missing
  // key is an error only when `required`; a mistyped one always is.
  bool String(const YAML::Node& map, const char* key, const std::string& where, std::string& out,
              bool required);
  bool Int(const YAML::Node& map, const char* key, const std::string& where, int64_t& out,
           bool required);
  bool Double(const YAML::Node& map, const char* key, const std::string& where, double& out,
              bool required);
  bool Bool(const YAML::Node& map, const char* key, const std::string& where, bool& out,
            bool required);

  bool ok() const { return diagnostics_.empty(); }
  // Throws ConfigError with everything collected, in file order, if anything was.
  void Throw();

 private:
  std::optional<YAML::Node> Get(const YAML::Node& map, const char* key, const std::string& where,
                                bool required);
  struct Diagnostic {
    int line;  // 0-based; -1 when unknown
    int column;
    std::string text;
  };
  std::string path_;
  std::vector<Diagnostic> diagnostics_;
};

}  // namespace vigil::config_internal
