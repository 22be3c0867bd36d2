//! drplan as a library: the engine pieces of the command-line tool that benchmarks and
//! other programs drive directly. The command line itself is the `drplan` binary.

pub mod apply;
