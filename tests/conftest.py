pytest_plugins = ["daprlab.harness"]
