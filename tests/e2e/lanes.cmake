# Read by ctest after the tests of e2e_tests are discovered (the directory's
# TEST_INCLUDE_FILES, after gtest_discover_tests' own): gives each end-to-end
# test one of two lanes (a RESOURCE_LOCK), so at most two run at once
# whatever `ctest -j` says. The tests that load the CPU themselves (a
# browser, hundreds of clients, a host stopped on a timer) take both lanes
# and run alone. Unit tests have no lock and fill the cores around them.
set(fleet_lane 0)
foreach(fleet_test IN LISTS e2e_tests_TESTS)
  if(fleet_test MATCHES "^E2E(DashboardBrowser|Listener|Partition)Test\\.")
    set(fleet_locks "fleet_e2e_lane_0;fleet_e2e_lane_1")
  else()
    set(fleet_locks "fleet_e2e_lane_${fleet_lane}")
    math(EXPR fleet_lane "(${fleet_lane} + 1) % 2")
  endif()
  set_tests_properties("${fleet_test}" PROPERTIES RESOURCE_LOCK "${fleet_locks}")
endforeach()
