"""Subscriptions and jobs: from a committed change to a delivered notification or a started job.

The outbox relay (relay.py) matches each committed change against the active Subscriptions (index.py,
criteria.py) and records the matches in the store's delivery ledger; channels deliver them: rest-hook
(resthook.py), websocket (websocket.py) and workflow jobs (workflow.py, jobs.py) through a job queue
(queue.py: in-process; arq_queue.py: arq on Redis). runtime.py wires them for a process.
"""
