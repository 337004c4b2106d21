'use client';
import { useEffect, useState } from 'react';

/** The current time, re-read every `ms`: keeps "12 s ago" and running durations moving. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}
