"""Generated protobuf and gRPC code for hub.v1 (python -m hub.codegen). Do not edit."""
