# vigil_test(NAME stage SOURCES ... LIBS ...): a GoogleTest binary labelled with its stage,
# so `ctest -L decode` runs one stage's tests.
function(vigil_test name)
  cmake_parse_arguments(T "" "LABEL" "SOURCES;LIBS" ${ARGN})
  if(NOT VIGIL_TESTS)
    return()
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  # Scratch files (::testing::TempDir()) go under the build directory, not /tmp: two checkouts
  # testing at once on one machine do not race on the same file names, and nothing is left
  # behind in /tmp.
  set(tmp ${CMAKE_BINARY_DIR}/test-tmp)
  file(MAKE_DIRECTORY ${tmp})
  # One value per property: gtest_discover_tests passes each list element on as an argument
  # of its own, so "LABELS stage;unit" set only the stage label and shifted the pairs after it.
  gtest_discover_tests(${name}
    PROPERTIES LABELS ${T_LABEL} ENVIRONMENT "TEST_TMPDIR=${tmp}"
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    DISCOVERY_TIMEOUT 60)
endfunction()

# vigil_benchmark(NAME SOURCES ... LIBS ...): a Google Benchmark binary (never run by ctest).
function(vigil_benchmark name)
  cmake_parse_arguments(B "" "" "SOURCES;LIBS" ${ARGN})
  if(NOT VIGIL_BENCH)
    return()
  endif()
  add_executable(${name} ${B_SOURCES})
  target_link_libraries(${name} PRIVATE ${B_LIBS} benchmark::benchmark)
endfunction()
