#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "vigil/common/event.h"
#include "vigil/common/time.h"

namespace vigil::config {

// One input field as the pipeline file declares it: where to find it in the record and what
// it must look like to be accepted.
struct FieldSpec {
  std::string name;  // the field's name inside Vigil (rules and features use it)
  std::string from;  // JSON: key or dotted path (a.b.c); CSV: header column name
  int column = -1;   // CSV without header: 0-based column index
  FieldType type = FieldType::kString;
  bool required = true;  // a missing required field dead-letters the record
  TimeFormat time_format = TimeFormat::kIso8601;
  std::optional<double> min;  // numeric bounds, inclusive
  std::optional<double> max;
  int line = 0;  // 1-based line in the pipeline file, for later diagnostics
};

enum class InputFormat : uint8_t { kJsonl, kCsv };

struct InputSpec {
  InputFormat format = InputFormat::kJsonl;
  char delimiter = ',';
  bool header = true;
  size_t max_record_bytes = 64 * 1024;
  std::vector<FieldSpec> fields;
};

struct OutputSpec {
  std::string dir;            // when set, decisions/dead letters/late go to files in it
  std::string decisions;      // file, or "-" for stdout
  std::string dead_letters;   // file, or "-" for stderr
  std::string late;           // file, or "-" for stderr
  bool include_event = true;  // decisions carry the validated event's fields
};

// One API token of api.tokens: who it is, what it may do, and where its secret is (an
// environment variable or a file; never the pipeline file itself). The secret is read when
// the server starts (api/auth.h).
struct ApiTokenSpec {
  std::string name;        // shown in the audit log
  std::string role;        // viewer | analyst | admin
  std::string token_env;   // the environment variable holding the secret, or
  std::string token_file;  // a file holding it (surrounding whitespace ignored)
  int line = 0;            // 1-based line in the pipeline file
};

// Pipeline is a parsed and validated pipeline file. Built once at start-up, then shared
// read-only by all threads. Sections owned by later stages (features, rules, model,
// decision) are kept as YAML nodes in `root` and parsed by those stages.
struct Pipeline {
  std::string path;  // the file it was read from ("<embedded>" for the demo)
  std::string name;
  std::string description;
  InputSpec input;
  size_t id_field = 0;  // indices into input.fields
  size_t time_field = 0;
  size_t key_field = 0;
  int64_t dedup_horizon_us = 10LL * 60 * 1000000;
  size_t dedup_max_ids = 10'000'000;
  int64_t allowed_lateness_us = 5LL * 60 * 1000000;
  // Decide events in event-time order (held until the watermark passes them) rather than in
  // arrival order: exact features for out-of-order input, at the cost of latency.
  bool event_time_order = false;
  int workers = 0;  // 0: one per core
  size_t batch_size = 1024;
  // Batches between the router and the writer (read, in the workers, or waiting to be
  // written): a deeper queue lets the router read on through a commit or a worker's time
  // slice lost to another process, at the cost of memory (each batch keeps its events and
  // outputs: ~1.2 MiB at 1024 records of the card-fraud example).
  size_t batches_in_flight = 48;
  OutputSpec outputs;
  // privacy.tokenize: fields written as keyed tokens wherever they leave the engine, by field
  // index (empty: none); the HMAC key is read from the environment variable token_key_env.
  std::vector<bool> tokenized;
  std::string token_key_env = "VIGIL_TOKEN_KEY";
  std::string alerts_store;  // alerts.store: the SQLite alert store (default DIR/alerts.db)
  std::string api_listen;    // api.listen: HOST:PORT of the HTTP API (default 127.0.0.1:7070)
  std::vector<ApiTokenSpec> api_tokens;  // api.tokens
  // api.tls: the HTTP API serves HTTPS with this PEM certificate (chain) and private key; paths
  // relative to the pipeline file. Both empty: plain HTTP.
  std::string api_tls_cert;
  std::string api_tls_key;
  // Checkpoints (vigil run --out DIR puts them in DIR/checkpoint unless this names a place).
  std::string checkpoint_dir;
  int64_t checkpoint_interval_us = 10LL * 1000000;
  // Hash of the sections that shape state (input, event, dedup, lateness, entities, features):
  // a checkpoint is tied to it. Rules, lists, the decision policy and the worker count may
  // change (rules even reload) without invalidating checkpoints.
  uint64_t state_hash = 0;
  std::string text;  // the file's text (diagnostics inside expressions need the quoting)
  YAML::Node root;

  // Index of a field by name, or -1.
  int FieldIndex(std::string_view name) const;
};

// ConfigError carries every problem found in a pipeline file, each as
// "file:line:col: what was expected", one per line in what().
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> diagnostics);
  const std::vector<std::string>& diagnostics() const { return diagnostics_; }

 private:
  std::vector<std::string> diagnostics_;
};

// Loads and validates a pipeline file. Throws ConfigError (start-up only).
Pipeline LoadPipelineFile(const std::string& path);
// Same, from text already in memory; `path` is used in messages only.
Pipeline LoadPipelineText(const std::string& text, const std::string& path);

}  // namespace vigil::config
