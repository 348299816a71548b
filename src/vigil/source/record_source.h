#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::source {

// One raw input record, before decoding.
struct Record {
  std::string_view text;  // the record without its line terminator; valid until the next Next()
  uint64_t offset = 0;    // byte offset of the record's first byte in the source
  uint64_t line = 0;      // 1-based line number where the record starts
  bool oversize = false;  // longer than max_record_bytes: `text` holds only its first bytes
  // Partitioned sources (Kafka): the record's partition (-1: none), a salt naming the
  // partition's current state (the engine keys the partition's entities, ids and clock by it,
  // so state restored afresh never meets state from before), and whether the record is only
  // replayed to rebuild state (its decision was committed before: nothing is written for it).
  int32_t partition = -1;
  uint64_t salt = 0;
  bool replay = false;
  int64_t timestamp_ms = -1;  // the message's timestamp (Kafka), ms since the Unix epoch
};

// A partition's position as committed with a run's outputs: the offset of the next record to
// read. `topic` indexes the source's topic list.
struct PartitionPosition {
  uint32_t topic = 0;
  int32_t partition = 0;
  int64_t next_offset = 0;
  int32_t slot = -1;  // the source's slot for the partition (Record::partition)
  bool operator==(const PartitionPosition&) const = default;
};

// How records are delimited in a byte stream.
enum class Framing : uint8_t {
  kLines,  // one record per line (JSON lines); \n or \r\n
  kCsv,    // RFC 4180: a newline inside a quoted field does not end the record
};

// Bytes readable after the end of every Record::text (zeros past the data), so decoders such
// as simdjson may read ahead without copying.
inline constexpr size_t kRecordPadding = 64;

// What a partitioned source reports for metrics (read from any thread).
struct SourceStats {
  int64_t lag = -1;  // records between the read positions and the partitions' ends; -1: unknown
  int partitions = 0;
  uint64_t rebalances = 0;
  uint64_t replayed = 0;       // records read again to rebuild state
  double restore_seconds = 0;  // how long the last rebuild took
  uint64_t restored = 0;       // partitions restored from a state snapshot
  uint64_t kept = 0;           // partitions assigned back after a rebalance with their state
};

// RecordSource is an edge interface: anything that yields raw records (a file, stdin, the
// generator, later a Kafka partition). One thread calls it; it is not thread-safe.
class RecordSource {
 public:
  virtual ~RecordSource() = default;

  // Appends up to `max` records to `out` (after clearing it). Returns false once the input is
  // exhausted and nothing was appended. Throws std::runtime_error on an I/O error.
  virtual bool Next(std::vector<Record>& out, size_t max) = 0;

  // Byte offset just past the last record returned: where a resumed run starts reading.
  virtual uint64_t Position() const = 0;
  // Records returned so far (including any before a resume offset, when known).
  virtual uint64_t LinesRead() const = 0;
  // The 1-based line number where the next record starts (for resume positions). Sources
  // with exactly one record per line need not override it.
  virtual uint64_t NextLine() const { return LinesRead() + 1; }

  // Names the input in messages and dead letters: a path, "stdin" or "generator:card-fraud".
  virtual const std::string& Name() const = 0;

  // Partitioned sources only (Kafka). The positions to commit with the outputs of every
  // record returned so far (partitions still replaying are left out: their committed position
  // is already ahead).
  virtual void Positions(std::vector<PartitionPosition>& out) const { out.clear(); }
  // Called on the reading thread, inside Next(), when the records that follow no longer
  // continue the ones before: partitions were revoked or assigned, or the source rewound.
  // The engine drops what it has in flight and has not committed.
  virtual void OnRewind(std::function<void()> handler) { (void)handler; }
  // Called on the reading thread, inside Next(), when a rebalance is about to revoke the
  // partitions: the engine decides and commits every record returned so far, and returns true
  // once that is committed (false: it could not, and dropped what it had in flight, as on a
  // rewind). After a true, a partition the rebalance assigns back keeps its state.
  virtual void OnDrain(std::function<bool()> handler) { (void)handler; }
  // Sources whose Next waits for records (Kafka) poll `stopping` while they wait, and return
  // once it is true: an engine that must stop (a worker or its writer failed) is then not
  // held until the next record arrives.
  virtual void StopWhen(std::function<bool()> stopping) { (void)stopping; }
  // Restarts every partition from its last committed position (after an aborted
  // transaction): state is rebuilt by replay, then decisions resume where the commit left off.
  virtual void Rewind() {}
  // The state a partition was restored with, read when its records start arriving under a
  // new salt: a snapshot the engine wrote (TransactionalOutputs::SendSnapshot) as of the
  // offset the source resumed the partition from, or null (the state starts empty and is
  // rebuilt by replay). Each snapshot is handed out once.
  virtual std::shared_ptr<const std::string> RestoredState(int32_t slot) {
    (void)slot;
    return nullptr;
  }
  // The slots of partitions no longer assigned since the last call (their state may go).
  virtual void TakeReleased(std::vector<int32_t>& slots) { slots.clear(); }
  // Names the record's origin in dead letters (a partitioned source names the partition).
  virtual const std::string& NameOf(const Record& r) const {
    (void)r;
    return Name();
  }
  // Thread-safe.
  virtual SourceStats Stats() const { return {}; }
};

struct FileOptions {
  Framing framing = Framing::kLines;
  size_t max_record_bytes = 64 * 1024;
  uint64_t start_offset = 0;  // resume: skip to this byte offset (must be a record start)
  uint64_t start_line = 1;    // the line number at start_offset
};

// Opens a file for replay, or standard input when `path` is "-". Throws std::runtime_error
// naming the path when it cannot be opened.
std::unique_ptr<RecordSource> OpenFile(const std::string& path, const FileOptions& options);

}  // namespace vigil::source
