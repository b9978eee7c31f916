"""The lab's benchmarks: they print numbers and assert nothing.

`daprlab bench` (chat_bench.py, with wrk_driver.py, proc_sampling.py, targets.py,
measurements.py, report.py and the no-Dapr floor_app.py); `python -m daprlab.bench.experiments`
(the figures EXPERIMENTS.md closes with); `python -m daprlab.bench.console_page` (the lab
console's page in a real browser).
"""
