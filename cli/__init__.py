"""The command line (typer): titlemap db|demo|import|print|check|serve …"""
