//! The library half of `qcs`: the configuration file format, shared by the binary and the fuzz targets.

pub mod config;
