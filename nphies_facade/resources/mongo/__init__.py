"""The MongoDB backend of the store port: the production store (replica set, multi-document transactions)."""
