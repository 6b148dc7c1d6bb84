# Installs Canopy as a CMake package: find_package(canopy) gives canopy::core, ...
include(CMakePackageConfigHelpers)
install(TARGETS canopy_dep_threads canopy_dep_spdlog canopy_dep_msgpack canopy_dep_zmq
                canopy_dep_toml canopy_dep_cli11
        EXPORT canopy-targets)
install(EXPORT canopy-targets NAMESPACE canopy::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/canopy)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/canopyConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/canopyConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/canopy)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/canopyConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/canopyConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/canopyConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/canopy)
