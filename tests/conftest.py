pytest_plugins = ["daprlab.harness", "tests.support.steps"]
