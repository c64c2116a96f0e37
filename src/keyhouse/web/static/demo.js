// The demo pricing page: previews every plan with keyhouse.js, and says plainly when it can't.
import { Initialize, PricePreview } from './keyhouse.js';

const config = JSON.parse(document.getElementById('demo-config').textContent);
const status = document.getElementById('status');
const rows = [...document.querySelectorAll('tr[data-price-id]')];

const REASONS = {
  invalid_client_token: 'The client-side token was refused',
  forbidden: 'This page may not use the token',
  request_blocked: 'The request was blocked',
  too_many_requests: 'Too many requests',
};

function show(message, isError) {
  status.textContent = message;
  status.classList.toggle('error', isError);
}

let latest = 0; // answers can arrive out of order: only the newest request may write the page

async function refresh() {
  const mine = ++latest;
  const items = rows.map((row) => ({
    priceId: row.dataset.priceId,
    quantity: Number(row.querySelector('input').value) || 1,
  }));
  try {
    const { data } = await PricePreview({ items });
    if (mine !== latest) return;
    data.details.lineItems.forEach((line, index) => {
      for (const field of ['subtotal', 'tax', 'total']) {
        rows[index].querySelector(`[data-field=${field}]`).textContent = line.formattedTotals[field];
      }
    });
    const rate = Number(data.details.lineItems[0]?.taxRate ?? 0);
    show(`Prices updated (tax rate ${new Intl.NumberFormat('en', { style: 'percent', maximumFractionDigits: 4 }).format(rate)}).`, false);
  } catch (error) {
    if (mine !== latest) return;
    rows.forEach((row) => row.querySelectorAll('[data-field]').forEach((cell) => { cell.textContent = '—'; }));
    const reason = REASONS[error.code] ?? 'The preview failed';
    show(`${reason}: ${error.detail} (${error.code})`, true);
  }
}

try {
  Initialize({ token: config.token, environment: config.environment, apiBase: config.apiBase });
  document.getElementById('plans').addEventListener('input', refresh);
  refresh();
} catch (error) {
  show(`keyhouse.js could not start: ${error.detail}`, true);
}
