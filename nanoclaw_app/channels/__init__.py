"""Channel adapters. Each channel is one folder with its adapter, setup flow and strings; registered in one tuple."""
