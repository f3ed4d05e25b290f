"""Generated Sparkplug B protobuf code (do not edit; see README.md)."""
