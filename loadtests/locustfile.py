"""Frontier load test: a realistic mix of OpenAI chat completions (see frontier/loadtest_scenarios.py).

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 --headless -u 20 -r 5 -t 60s --csv out/locust
    frontier loadtest --host http://127.0.0.1:8000 --users 20 --duration 60s --out out   # same, plus summary.json

Per-pool TTFT/total latency and the decision mix appear as the custom rows pool:*, decision and scenario.
"""

from frontier.loadtest_scenarios import ChatUser  # noqa: F401  (Locust runs the User classes it finds here)
