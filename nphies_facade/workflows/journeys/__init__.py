"""The journeys the server runs: registration and eligibility (eligibility.py) and the claims lifecycle
(claims.py). install.py registers them with the workflow engine; registered.py does so when imported."""
