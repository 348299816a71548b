#pragma once

// Test support: linking `vigil_allocation_counter` into a test binary replaces the global
// operator new / delete with versions that count allocations, so a test can assert that a
// per-event path allocates nothing. Counts every thread's allocations.
namespace vigil::testing {

long AllocationCount();

}  // namespace vigil::testing
