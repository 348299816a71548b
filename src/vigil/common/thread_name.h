#pragma once

#include <pthread.h>

#include <string>
#include <string_view>

namespace vigil {

// Names the calling thread as `top -H`, `ps -L`, perf and gdb show it (Linux keeps the first
// 15 bytes). Vigil's threads: vigil-router, vigil-worker-N, vigil-commit; the writer is the
// main thread, and librdkafka names its own (rdk:...).
inline void NameThisThread(std::string_view name) {
  const std::string n(name.substr(0, 15));
  pthread_setname_np(pthread_self(), n.c_str());
}

}  // namespace vigil
