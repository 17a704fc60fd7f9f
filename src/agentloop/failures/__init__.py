"""The domain of a failed test: records, parsers, classification, grouping, ordering."""
