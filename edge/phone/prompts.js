// Task name + optional text -> the prompt string, from the bundle's task table, as edge/prompts.py.

const BINS = 1000;

// 'OD', 'od' or '<OD>' -> '<OD>'.
export const normalizeTask = (task) => `<${task.trim().replace(/^<+|>+$/g, "").toUpperCase()}>`;

export const takesRegion = (task) => normalizeTask(task).startsWith("<REGION_TO_");

function template(tasks, task) {
  const entry = tasks[normalizeTask(task)];
  if (!entry) throw new Error(`unknown task ${task}; tasks: ${Object.keys(tasks).sort().join(", ")}`);
  return entry.prompt;
}

export const takesInput = (tasks, task) => template(tasks, task).includes("{input}");

// The prompt for `task`; `text` fills {input} and must be given exactly when the task takes it.
export function buildPrompt(tasks, task, text) {
  const key = normalizeTask(task);
  const prompt = template(tasks, key);
  const given = Boolean(text && text.trim());
  if (!prompt.includes("{input}")) {
    if (given) throw new Error(`task ${key} takes no input`);
    return prompt;
  }
  if (!given) throw new Error(takesRegion(key) ? `task ${key} needs a region` : `task ${key} needs text input`);
  return prompt.replace("{input}", text.trim());
}

// A pixel box [x1, y1, x2, y2] of a (width, height) picture -> '<loc_x1><loc_y1><loc_x2><loc_y2>'.
export function regionTokens(box, [width, height]) {
  return box.map((v, i) => `<loc_${Math.min(Math.max(Math.trunc(v * BINS / (i % 2 ? height : width)), 0),
    BINS - 1)}>`).join("");
}
