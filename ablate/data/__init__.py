"""Data splits: stratified train/validation/test splits, their errors, and content hashes
of data files. Imports only the root contract."""
