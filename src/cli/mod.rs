//! CLI subcommands, one module each. They reach agents only through `api-client`.
