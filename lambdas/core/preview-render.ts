// A change preview (core/preview.ts) as HTML for the approval page. Apart from
// the gathering and parsing, so the approvals function bundles no YAML parser.
import type { ChangePreview, WindowActivity } from './preview.ts';

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function diffHtml(diff: string): string {
  return diff
    .split('\n')
    .map((line) => (line.startsWith('+ ') ? `<ins>${escape(line)}</ins>` : line.startsWith('- ') ? `<del>${escape(line)}</del>` : `<span>${escape(line)}</span>`))
    .join(''); // each line is a block (the page's style): a newline between them would show as a blank line
}

/**
 * The preview of one change as an HTML fragment for a page (everything escaped).
 * Used by the approval page; a plan's page renders each of its changes with it.
 */
export function renderChangePreview(preview: ChangePreview, options: { needsApproval?: boolean } = {}): string {
  const parts: string[] = [];
  if (preview.problems.length > 0) {
    // A plan's change the policy allows outright passes without the approval: what Airlock cannot show of it is said, and stops nothing.
    const headline =
      options.needsApproval === false
        ? 'Airlock cannot show what this request does. The policy allows it without approval, so it does not stop the approval.'
        : 'Airlock cannot show what this request does, so it cannot be approved.';
    parts.push(`<div class="blind"><strong>${headline}</strong><ul>${preview.problems.map((p) => `<li>${escape(p)}</li>`).join('')}</ul></div>`);
  }
  for (const object of preview.objects) {
    const flags = object.flags.length
      ? `<ul class="flags">${object.flags.map((flag) => `<li>${escape(flag)}</li>`).join('')}</ul>`
      : '<p class="note">No privileged, host, RBAC, service-account or Secret fields.</p>';
    const images = object.images.length ? `<p>Images: ${object.images.map((image) => `<code>${escape(image)}</code>`).join(', ')}</p>` : '';
    parts.push(`<section class="object"><h3>${escape(object.kind)}${object.target ? ` <code>${escape(object.target)}</code>` : ''}</h3>${images}${flags}</section>`);
  }
  if (preview.exec) {
    const { exec } = preview;
    parts.push(
      `<h3>Command</h3><p>Runs in pod <code>${escape(exec.pod)}</code>${exec.container ? `, container <code>${escape(exec.container)}</code>` : ' (its default container)'}, without a TTY:</p><pre class="command">${escape(exec.command)}</pre>` +
        (exec.stdin !== undefined ? `<h3>Standard input (redacted)</h3><pre class="body">${escape(exec.stdin)}</pre>` : '<p class="note">No standard input.</p>'),
    );
  }
  for (const note of preview.notes) parts.push(`<p class="note">${escape(note)}</p>`);
  if (preview.deletes?.length) parts.push(`<h3>What the delete takes</h3><ul>${preview.deletes.map((line) => `<li>${escape(line)}</li>`).join('')}</ul>`);
  if (preview.diff !== undefined) parts.push(`<h3>Dry run against the live object</h3><pre class="diff">${diffHtml(preview.diff)}</pre>`);
  if (preview.live !== undefined) parts.push(`<h3>Live object</h3><pre>${escape(preview.live)}</pre>`);
  if (preview.body !== undefined) parts.push(`<h3>Request body (redacted)</h3><pre class="body">${escape(preview.body)}</pre>`);
  if (preview.window) parts.push(renderWindow(preview.window));
  return `<div class="preview">${parts.join('\n')}</div>`;
}

/** The window a change belongs to, as an HTML fragment: the agent's reason and ticket, and what it has done in it so far. */
export function renderWindow(w: WindowActivity): string {
  const counts = Object.entries(w.counts)
    .map(([decision, count]) => `${count} ${decision}`)
    .join(', ');
  return (
    `<h3>This window</h3><p>Window <code>${escape(w.grantId)}</code>: ${escape(w.reason ?? '(no reason given)')}${w.ticket ? ` · ticket ${escape(w.ticket)}` : ''} <span class="note">(written by the agent)</span></p>` +
    `<p>So far: ${escape(counts || 'no requests')}</p>${w.recent.length ? `<ul class="recent">${w.recent.map((line) => `<li><code>${escape(line)}</code></li>`).join('')}</ul>` : ''}`
  );
}
