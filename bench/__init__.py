"""The benchmark harness: refcnn vs torch CPU side by side (see docs/performance.md)."""
