"""The two import contracts of `make lint` that import-linter has no type for (.importlinter uses them).

- `app_interfaces`: an app reaches another only through the modules named as its interface (services,
  selectors and, for teams, permissions); its models, views, tasks and the rest are its own.
- `no_module_cycles`: no module imports itself back through others, so every import can sit at the top
  of its file and start-up never depends on the order modules happen to load in.
"""
from __future__ import annotations

import grimp
from importlinter import Contract, ContractCheck, fields, output


def _lines(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    return ", ".join(str(d["line_number"]) for d in details) or "?"


class AppInterfacesContract(Contract):
    type_name = "app_interfaces"

    container = fields.StringField()
    interfaces = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        prefix = f"{self.container}."
        allowed = set(self.interfaces)
        broken = []
        for importer in sorted(m for m in graph.modules if m.startswith(prefix)):
            app = importer.split(".")[1]
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                parts = imported.split(".")
                if not imported.startswith(prefix) or parts[1] == app or len(parts) < 3:
                    continue
                if parts[2] not in allowed:
                    broken.append((importer, imported, _lines(graph, importer, imported)))
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, imported, lines in check.metadata["broken"]:
            output.print_error(f"{importer} -> {imported} (l. {lines})", bold=False)
        output.new_line()
        output.print(f"An app may import another's {', '.join(self.interfaces)} only.")


class NoModuleCyclesContract(Contract):
    type_name = "no_module_cycles"

    containers = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        ours = sorted(m for m in graph.modules if any(m == c or m.startswith(f"{c}.") for c in self.containers))
        cycles, seen = [], set()
        for importer in ours:
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if imported not in ours or frozenset((importer, imported)) in seen:
                    continue
                back = graph.find_shortest_chain(importer=imported, imported=importer)
                if back:
                    seen.add(frozenset((importer, imported)))
                    cycles.append((importer, *back))
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(" -> ".join(cycle), bold=False)
