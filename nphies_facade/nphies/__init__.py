"""NPHIES exchange: message building and parsing, the gateway client and the simulator.

A leaf package: it knows FHIR JSON and NPHIES, not the store.
"""
