"""Where datasets come from besides a directory of contract files: databases
(:mod:`yiwu_credit.sources.database`) and, through source profiles, other people's files."""
