// Compares CloudFormation templates offline with the CDK's own diff engine (@aws-cdk/cloudformation-diff,
// pinned in package.json): the same replacement rules (from the resource spec), IAM and security-group
// summaries as `cdk diff`. No AWS call, no credentials.
//
//   node scripts/changes/diff.mjs <pairs.json>
//
// pairs.json: [{"id": "...", "old": "<template.json>" | null, "new": "<template.json>" | null}, ...]
// (null: the stack does not exist on that side, so it is compared with an empty template).
// Prints one JSON document on stdout: [{"id", "resources": [...], "iam": {...}, "securityGroups": {...},
// "text": "<what cdk diff would print>"}, ...]. Python (pipeline/changes) turns it into the report.
import { readFileSync } from 'node:fs';
import { fullDiff, formatDifferences } from '@aws-cdk/cloudformation-diff';

const REPLACING = new Set(['WILL_REPLACE', 'MAY_REPLACE']);
// Drop ANSI colours: the report is plain text (chalk also honours FORCE_COLOR=0).
const plain = (s) => String(s ?? '').replace(/\u001b\[[0-9;]*m/g, '');

function load(path) {
  return path ? JSON.parse(readFileSync(path, 'utf8')) : {};
}

function paths(...templates) {
  const map = {};
  for (const template of templates) {
    for (const [logicalId, resource] of Object.entries(template.Resources ?? {})) {
      const path = resource?.Metadata?.['aws:cdk:path'];
      if (path) map[logicalId] = path;
    }
  }
  return map;
}

function action(change) {
  if (change.isImport) return 'imported';
  if (change.isAddition) return 'added';
  if (change.isRemoval) return 'removed';
  return 'modified';
}

function resources(diff, pathOf) {
  const found = [];
  diff.resources.forEachDifference((logicalId, change) => {
    if (!change.isDifferent) return;
    const properties = Object.entries(change.propertyUpdates).map(([name, p]) => ({
      name,
      impact: p.changeImpact ?? null,
    }));
    const other = Object.keys(change.otherChanges);
    found.push({
      logicalId,
      type: change.newResourceType ?? change.oldResourceType,
      typeChanged: change.resourceTypeChanged,
      path: pathOf[logicalId] ?? null,
      action: action(change),
      impact: change.changeImpact,
      replaced: REPLACING.has(change.changeImpact),
      properties,
      other,
      oldDeletionPolicy: change.oldValue?.DeletionPolicy ?? null,
      newDeletionPolicy: change.newValue?.DeletionPolicy ?? null,
      oldUpdateReplacePolicy: change.oldValue?.UpdateReplacePolicy ?? null,
    });
  });
  return found;
}

// `Prod/App/Web/TaskRole/Resource` -> `App/Web/TaskRole`, as `cdk diff` shows construct paths.
function shortPath(path) {
  const parts = path.split('/');
  if (parts.length > 2) parts.shift();
  if (parts[parts.length - 1] === 'Resource') parts.pop();
  return parts.join('/');
}

function table(rows, pathOf) {
  // [header, ...rows] of plain strings, `${LogicalId}` shown as its construct path; an empty table is [].
  const named = (cell) =>
    plain(cell).replace(/\$\{([A-Za-z0-9]+)(\.[A-Za-z.]+)?\}/g, (whole, id, attribute) =>
      pathOf[id] ? `\${${shortPath(pathOf[id])}${attribute ?? ''}}` : whole);
  const cleaned = rows.map((row) => row.map(named));
  return cleaned.length > 1 ? cleaned : [];
}

function compare(pair) {
  const oldTemplate = load(pair.old);
  const newTemplate = load(pair.new);
  const diff = fullDiff(oldTemplate, newTemplate);
  const pathOf = paths(oldTemplate, newTemplate);
  let text = '';
  const stream = { columns: 120, write(chunk) { text += chunk; return true; } };
  if (!diff.isEmpty) formatDifferences(stream, diff, pathOf);
  const iam = diff.iamChanges;
  const groups = diff.securityGroupChanges;
  return {
    id: pair.id,
    differenceCount: diff.differenceCount,
    permissionsBroadened: diff.permissionsBroadened,
    resources: resources(diff, pathOf),
    outputs: diff.outputs.logicalIds,
    parameters: diff.parameters.logicalIds,
    iam: {
      statements: table(iam.summarizeStatements(), pathOf),
      managedPolicies: table(iam.summarizeManagedPolicies(), pathOf),
      json: iam._toJson(),
    },
    securityGroups: { rules: table(groups.summarize(), pathOf), json: groups.toJson() },
    text: plain(text),
  };
}

const pairs = JSON.parse(readFileSync(process.argv[2], 'utf8'));
process.stdout.write(JSON.stringify(pairs.map(compare)));
